import pytest
import torch

# One intra-op thread: these nets are tiny, and on a shared 2-core machine extra threads only contend.
torch.set_num_threads(1)

TINY_AGENT = {"latent_dim": 3, "encoder_hidden": [16, 16], "meta_batch": 2, "batch_size": 8, "context_size": 6,
              "sac": {"hidden": [16, 16]}}


@pytest.fixture
def tiny_cfg():
    from belief.training import TrainConfig

    def make(algo="peril", **kw):
        agent = dict(TINY_AGENT)
        if algo != "pearl":
            agent.update(demo_context_size=6, demo_batch_size=6)
        base = dict(algo=algo, env="toy", iterations=4, grad_steps=3, tasks_per_round=2, enc_trajs=1, rl_trajs=1,
                    initial_trajs=1, n_train_tasks=3, n_test_tasks=2, eval_every=2, adapt_trajs=2,
                    checkpoint_every=2, buffer_capacity=500, agent=agent)
        base.update(kw)
        return TrainConfig(**base)

    return make
