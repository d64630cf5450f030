"""PERIL's 2D task families (Reach2D, Stick2D, Peg2D, Key2D) and PEARL's sparse point robot.

Pymunk physics, numpy/OpenCV rendering, Gymnasium envs (registered by `registration.py` when `sim` is
imported), task sets, a privileged expert, demonstrations on disk and vectorised stepping.
"""
