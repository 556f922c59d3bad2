"""K Q-networks evaluated together, their parameters stacked on a leading axis."""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from networks.heads import QHead, QNetwork
from networks.initializers import BiasInit, zeros_bias_init

# Parameter subtrees that hold one entry per network along their leading axis.
_STACKED = ("heads", "networks")


def _stacked(module: type[nn.Module], num: int) -> type[nn.Module]:
    return nn.vmap(
        module,
        variable_axes={"params": 0},
        split_rngs={"params": True},
        in_axes=None,
        out_axes=0,
        axis_size=num,
    )


class QEnsemble(nn.Module):
    """K Q-networks: observations (..., *obs_shape) -> outputs (K, ..., A, m).

    `shared_torso` feeds one torso to K heads (the i-DQN Atari layout); otherwise each of
    the K networks has its own torso and head. `init` builds the stacked parameters; apply
    them with `apply_ensemble`. `kernel_init` and `bias_init` initialise the heads (the
    torso has its own).
    """

    torso: nn.Module
    num_networks: int
    num_actions: int
    num_outputs: int = 1
    shared_torso: bool = False
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: BiasInit = zeros_bias_init

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        if self.shared_torso:
            heads = _stacked(QHead, self.num_networks)
            head = heads(
                self.num_actions, self.num_outputs, self.kernel_init, self.bias_init, name="heads"
            )
            return head(self.torso(obs))
        networks = _stacked(QNetwork, self.num_networks)
        # An unbound copy of the torso, so that each network owns (and stacks) its own.
        torso = self.torso.clone(parent=None)
        network = networks(
            torso,
            self.num_actions,
            self.num_outputs,
            self.kernel_init,
            self.bias_init,
            name="networks",
        )
        return network(obs)


def map_networks(fn, params: dict) -> dict:
    """Applies fn to every stacked leaf (leading axis K) of a QEnsemble's parameters (or of
    a tree shaped like them, e.g. optimiser moments); shared leaves are left as they are."""
    return {
        collection: {
            name: jax.tree.map(fn, subtree) if name in _STACKED else subtree
            for name, subtree in variables.items()
        }
        for collection, variables in params.items()
    }


def apply_ensemble(ensemble: QEnsemble, params: dict, obs: jax.Array) -> jax.Array:
    """The ensemble's outputs (K, ..., A, m). Independent networks are applied one after
    another from their slices of the stacked parameters: XLA:CPU runs convolutions vmapped
    over stacked weights several times slower (experiments.bench), and one network then
    computes exactly as a plain QNetwork (K = 1 i-DQN is DQN bit for bit)."""
    if ensemble.shared_torso:
        return ensemble.apply(params, obs)
    single = QNetwork(ensemble.torso, ensemble.num_actions, ensemble.num_outputs)
    networks = params["params"]["networks"]
    return jnp.stack(
        [
            single.apply({"params": jax.tree.map(lambda leaf, k=k: leaf[k], networks)}, obs)
            for k in range(ensemble.num_networks)
        ]
    )
