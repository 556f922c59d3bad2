"""84x84 RGB rendering of the MD3QN mazes (envs.maze), vectorised over a pool.

Drawn straight at 84x84 (16-pixel cells inside a 2-pixel margin), not rendered large and
resized as the authors' code does. A base image per layout holds the floor, the unused
cells, the walls, the one-way edges and every reward cell; a state paints its visited cells
(which covers the consumed rewards) and then the agent.
"""

from __future__ import annotations

import numpy as np

FRAME_SIZE = 84
CELL = 16
MARGIN = 2

FLOOR = (255, 255, 255)
UNUSED = (90, 90, 90)
VISITED = (200, 200, 200)
WALL = (0, 0, 0)
# A one-way edge is drawn in the colour of the one direction that may cross it.
ONE_WAY_UP_OR_LEFT = (255, 215, 0)
ONE_WAY_DOWN_OR_RIGHT = (0, 190, 210)
AGENT = (220, 30, 30)
SOURCE_COLOURS = ((240, 140, 30), (50, 170, 60), (60, 110, 240), (180, 60, 200))

# Direction numbering and move codes shared with envs.maze.
UP, LEFT, DOWN, RIGHT = 0, 1, 2, 3
BLOCKED, OPEN, EXIT = 0, 1, 2


def _cell_origin(row: int, col: int) -> tuple[int, int]:
    return MARGIN + CELL * row, MARGIN + CELL * col


def _edge_colour(crosses_forward: bool, crosses_back: bool) -> tuple | None:
    """Colour of an inner edge; None when it is open both ways. ``forward`` is down or right."""
    if crosses_forward and crosses_back:
        return None
    if crosses_forward:
        return ONE_WAY_DOWN_OR_RIGHT
    return ONE_WAY_UP_OR_LEFT if crosses_back else WALL


def base_image(used: np.ndarray, source: np.ndarray, moves: np.ndarray) -> np.ndarray:
    """(84, 84, 3) uint8 image of a layout before any step.

    used (H, W) bool, source (H, W) int (-1: no reward), moves (H, W, 4) move codes.
    """
    height, width = used.shape
    if MARGIN * 2 + CELL * max(height, width) > FRAME_SIZE:
        raise ValueError(f"a {height}x{width} maze does not fit in {FRAME_SIZE} pixels")
    image = np.empty((FRAME_SIZE, FRAME_SIZE, 3), np.uint8)
    image[:] = FLOOR

    def hline(row: int, col: int, colour: tuple) -> None:  # the top edge of (row, col)
        y, x = _cell_origin(row, col)
        image[y - 1 : y + 1, x - 1 : x + CELL + 1] = colour

    def vline(row: int, col: int, colour: tuple) -> None:  # the left edge of (row, col)
        y, x = _cell_origin(row, col)
        image[y - 1 : y + CELL + 1, x - 1 : x + 1] = colour

    for row in range(height):
        for col in range(width):
            y, x = _cell_origin(row, col)
            if not used[row, col]:
                image[y + 1 : y + CELL - 1, x + 1 : x + CELL - 1] = UNUSED
            elif source[row, col] >= 0:
                image[y + 5 : y + 11, x + 5 : x + 11] = SOURCE_COLOURS[source[row, col]]
    # Edges last, so that they sit on top of the cell fills.
    for row in range(height + 1):
        for col in range(width):
            if row in (0, height):  # outer border: open (an exit) or a wall
                inside, direction = (row, UP) if row == 0 else (row - 1, DOWN)
                if moves[inside, col, direction] == BLOCKED:
                    hline(row, col, WALL)
                continue
            colour = _edge_colour(
                moves[row - 1, col, DOWN] != BLOCKED,
                moves[row, col, UP] != BLOCKED,
            )
            if colour is not None:
                hline(row, col, colour)
    for row in range(height):
        for col in range(width + 1):
            if col in (0, width):
                inside, direction = (col, LEFT) if col == 0 else (col - 1, RIGHT)
                if moves[row, inside, direction] == BLOCKED:
                    vline(row, col, WALL)
                continue
            colour = _edge_colour(
                moves[row, col - 1, RIGHT] != BLOCKED,
                moves[row, col, LEFT] != BLOCKED,
            )
            if colour is not None:
                vline(row, col, colour)
    return image


def cell_pixels(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices (y * 84 + x) per flat cell: (C, 14 * 14) of each cell's inside
    (painted when visited) and (C, 8 * 8) of the agent's square in it."""
    inside, agent = [], []
    for row in range(height):
        for col in range(width):
            y, x = _cell_origin(row, col)
            for pixels, lo, hi in ((inside, 1, CELL - 1), (agent, 4, 12)):
                ys, xs = np.meshgrid(np.arange(y + lo, y + hi), np.arange(x + lo, x + hi))
                pixels.append((ys * FRAME_SIZE + xs).reshape(-1))
    return np.stack(inside), np.stack(agent)


def render(
    base: np.ndarray,
    inside: np.ndarray,
    agent: np.ndarray,
    visited: np.ndarray,
    position: np.ndarray,
) -> np.ndarray:
    """(P, 84, 84, 3) uint8 frames of P states.

    base (84, 84, 3) from ``base_image``; inside and agent from ``cell_pixels``; visited
    (P, C) bool over the C flat cells; position (P,) flat cell of the agent.
    """
    num = visited.shape[0]
    frames = np.empty((num, FRAME_SIZE * FRAME_SIZE, 3), np.uint8)
    frames[:] = base.reshape(1, -1, 3)
    env, cell = np.nonzero(visited)
    frames[env[:, None], inside[cell]] = VISITED
    frames[np.arange(num)[:, None], agent[position]] = AGENT
    return frames.reshape(num, FRAME_SIZE, FRAME_SIZE, 3)
