"""Trial runner node: for each task, set it (rig or twin), run K episodes, record success per episode.

It speaks only the contract, so it drives a twin and the hardware identically:
/task/request -> wait /task/current; /policy/reset_belief at each trial; per episode the arm's
`home` service, /policy/enable true, count the policy's commands up to `episode_steps`, /policy/enable
false. Success is latched from the arm namespace's `success` topic during the episode.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import rclpy
from rclpy.node import Node

from meldbot import topics
from meldbot.node_support import declare_config
from meldbot.trial_journal import EpisodeRecord, TrialJournal, TrialPlan


@dataclass
class TrialRunnerConfig:
    tasks: str = "train-00"  # comma-separated task ids
    episodes_per_trial: int = 2
    episode_steps: int = 30  # policy control steps per episode
    journal: str = "runs/trials/journal.json"
    arm_namespace: str = "arm"
    policy_label: str = ""  # recorded in the journal (e.g. the model file)
    task_timeout_s: float = 120.0  # rig move + confirmation
    service_timeout_s: float = 60.0
    step_timeout_s: float = 10.0  # longest gap between two policy commands before the episode fails


class TrialRunnerError(RuntimeError):
    pass


class TrialRunnerNode(Node):
    def __init__(self):
        super().__init__("trial_runner")
        self.config = config = declare_config(self, TrialRunnerConfig)
        self.plan = TrialPlan([t.strip() for t in config.tasks.split(",") if t.strip()],
                              config.episodes_per_trial, config.episode_steps)
        self.journal = TrialJournal(config.journal, self.plan, config.policy_label)
        ns = "/" + config.arm_namespace.strip("/") if config.arm_namespace.strip("/") else ""
        arm = lambda name: f"{ns}/{name}"  # noqa: E731
        from std_msgs.msg import String

        self._String = String
        self.task_pub = topics.create_publisher(self, topics.TASK_REQUEST)
        self.current_task = None
        topics.create_subscription(self, topics.TASK_CURRENT, lambda m: setattr(self, "current_task", m.data))
        self.commands = 0
        self.node_cmd_sub = self.create_subscription(
            topics.JOINT_VELOCITY_COMMANDS.type_class, arm(topics.JOINT_VELOCITY_COMMANDS.name), self._on_command,
            topics.qos_profile(topics.JOINT_VELOCITY_COMMANDS.qos))
        self.create_subscription(topics.SUCCESS.type_class, arm(topics.SUCCESS.name), self._on_success,
                                 topics.qos_profile(topics.SUCCESS.qos))
        self.create_subscription(topics.SPARSE_REWARD.type_class, arm(topics.SPARSE_REWARD.name), self._on_sparse,
                                 topics.qos_profile(topics.SPARSE_REWARD.qos))
        self.create_subscription(topics.SHAPED_REWARD.type_class, arm(topics.SHAPED_REWARD.name), self._on_shaped,
                                 topics.qos_profile(topics.SHAPED_REWARD.qos))
        self.home = self.create_client(topics.ARM_HOME.type_class, arm(topics.ARM_HOME.name))
        self.enable = topics.create_client(self, topics.POLICY_ENABLE)
        self.reset_belief = topics.create_client(self, topics.POLICY_RESET_BELIEF)
        self._episode_open = False

    # --- subscriptions (latched into the open episode) ------------------------------------------
    def _on_command(self, _msg):
        if self._episode_open:
            self.commands += 1
            self._last_command = time.monotonic()
            self._rewards_at_step()

    def _rewards_at_step(self):
        self.sparse_return += self._sparse
        if self._shaped is not None:
            self.shaped_return = (self.shaped_return or 0.0) + self._shaped
        if self.success and self.first_success_step is None:
            self.first_success_step = self.commands

    def _on_success(self, msg):
        if self._episode_open and msg.data:
            self.success = True

    def _on_sparse(self, msg):
        self._sparse = float(msg.data)

    def _on_shaped(self, msg):
        self._shaped = float(msg.data)

    # --- helpers -------------------------------------------------------------------------------
    def _spin_until(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TrialRunnerError(f"timed out after {timeout:.0f}s waiting for {what}")
            rclpy.spin_once(self, timeout_sec=0.05)

    def _call(self, client, request, what: str):
        self._spin_until(client.service_is_ready, self.config.service_timeout_s, f"service {client.srv_name}")
        future = client.call_async(request)
        self._spin_until(future.done, self.config.service_timeout_s, f"{what} ({client.srv_name})")
        response = future.result()
        if hasattr(response, "success") and not response.success:
            raise TrialRunnerError(f"{what} failed: {response.message}")
        return response

    def _set_policy(self, enabled: bool):
        req = topics.POLICY_ENABLE.type_class.Request()
        req.data = enabled
        self._call(self.enable, req, "enabling policy" if enabled else "stopping policy")

    # --- the run -------------------------------------------------------------------------------
    def set_task(self, task_id: str):
        self.task_pub.publish(self._String(data=task_id))
        self._spin_until(lambda: self.current_task == task_id, self.config.task_timeout_s,
                         f"task '{task_id}' in place on /task/current: is a rig or twin running, and does its task "
                         f"table have this id? (its log names unknown ids)")

    def run_episode(self, task_id: str, index: int) -> EpisodeRecord:
        self._call(self.home, topics.ARM_HOME.type_class.Request(), "homing the arm")
        self.commands, self.success, self.first_success_step = 0, False, None
        self.sparse_return, self.shaped_return = 0.0, None
        self._sparse, self._shaped = 0.0, None
        started = time.time()
        self._last_command = time.monotonic()
        self._episode_open = True
        try:
            self._set_policy(True)
            self._spin_until(lambda: self.commands >= self.plan.episode_steps
                             or time.monotonic() - self._last_command > self.config.step_timeout_s,
                             self.plan.episode_steps * self.config.step_timeout_s, "episode to finish")
            if self.commands < self.plan.episode_steps:
                raise TrialRunnerError(f"policy stopped commanding after {self.commands} of "
                                       f"{self.plan.episode_steps} steps (no command for {self.config.step_timeout_s}s)")
        finally:
            self._episode_open = False
            self._set_policy(False)
        if self.success and self.first_success_step is None:
            self.first_success_step = self.commands
        return EpisodeRecord(index, self.success, self.commands, self.first_success_step,
                             self.sparse_return, self.shaped_return, started, time.time())

    def run(self) -> int:
        log = self.get_logger()
        pending = self.journal.pending_tasks()
        if self.journal.resumed:
            log.info(f"resuming {self.journal.path}: {len(self.plan.tasks) - len(pending)} trial(s) done, "
                     f"{len(pending)} to go")
        for task_id in pending:
            log.info(f"trial on task {task_id}: setting task")
            self.set_task(task_id)
            self.journal.start_trial(task_id)
            self._call(self.reset_belief, topics.POLICY_RESET_BELIEF.type_class.Request(), "resetting belief")
            for index in range(1, self.plan.episodes_per_trial + 1):
                record = self.run_episode(task_id, index)
                self.journal.record_episode(task_id, record)
                log.info(f"task {task_id} episode {index}: {'SUCCESS' if record.success else 'no success'} "
                         f"({record.steps} steps)")
        table = self.journal.summary_table()
        summary_path = Path(self.config.journal).with_name("summary.txt")
        summary_path.write_text(table + "\n")
        print("\nTrial summary (" + str(self.journal.path) + ")\n" + table, flush=True)
        return 0


def main(args=None) -> int:
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    try:
        node = TrialRunnerNode()
        return node.run()
    except KeyboardInterrupt:
        return 130
    except (TrialRunnerError, ValueError) as exc:
        print(f"[ERROR] trial_runner: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
