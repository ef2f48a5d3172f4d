"""MPTE envs: ``MT-TwoGoalMaze-v0`` on Farama miniworld (:mod:`mtgym.envs.mpte.two_goal_maze`, needs ``mtgym[maze]``)."""
