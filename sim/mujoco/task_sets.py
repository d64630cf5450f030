"""`make_task_set(seed, n_train, n_test)` per MuJoCo family (MELD's default: 20 train / 10 held out).

Task sets are pure numpy: building one does not compile a model.
"""

from sim.mujoco.cable import make_task_set as widowx_cable
from sim.mujoco.sawyer import SawyerPegTask, SawyerReachTask

sawyer_reach = SawyerReachTask.make_task_set
sawyer_peg = SawyerPegTask.make_task_set

__all__ = ["widowx_cable", "sawyer_reach", "sawyer_peg"]
