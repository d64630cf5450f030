"""The servo loop on its own: held commands integrate, limits stop the reference, no wind-up."""

import numpy as np

from sim.mujoco.servo import JointVelocityServo


def make():
    servo = JointVelocityServo([-1.0, -1.0], [1.0, 1.0], [2.0, 2.0], kp=10.0, dt=0.01, max_following_error=0.1)
    servo.reset([0.0, 0.0])
    return servo


def test_held_command_is_clipped_and_integrated():
    servo = make()
    assert np.allclose(servo.set_command([5.0, -0.5]), [2.0, -0.5])  # clipped to the velocity limit
    q = np.zeros(2)
    for _ in range(10):  # the joint follows perfectly: the set-point is the feed-forward command
        v = servo.tick(q)
        q = q + v * 0.01
    assert np.allclose(v, [2.0, -0.5]) and np.allclose(q, [0.2, -0.05])


def test_reference_stops_at_the_joint_limit_and_pulls_back():
    servo = make()
    servo.set_command([2.0, 0.0])
    q = np.zeros(2)
    for _ in range(200):
        v = servo.tick(q)
        q = q + v * 0.01
    assert servo.q_ref[0] == 1.0 and abs(q[0] - 1.0) < 1e-3 and abs(v[0]) < 0.1
    assert servo.tick(np.array([1.05, 0.0]))[0] < 0  # pushed past the limit: drives back


def test_blocked_joint_does_not_wind_up():
    servo = make()
    servo.set_command([2.0, 0.0])
    for _ in range(100):  # joint 0 is blocked at 0 for a second
        servo.tick(np.zeros(2))
    assert servo.q_ref[0] <= 0.1 + 1e-9  # bounded following error, not 2 rad of pent-up motion
    servo.set_command([0.0, 0.0])
    assert np.all(np.abs(servo.tick(np.zeros(2))) <= 2.0)
