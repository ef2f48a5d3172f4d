"""
Run a trained mtsb3 agent with RL Zoo3's ``enjoy()``: one sub-env per task, and a per-task success table at the end.

Defaults: ``--gym-packages mtgym`` and ``-f logs``. Example::

    python scripts/enjoy.py --algo mtsac --env MT-MetaWorld-MT10-v0 -n 1500 --no-render
"""

import sys


def main() -> None:
    from mtsb3.zoo import prepare_enjoy_argv, register_zoo

    argv = prepare_enjoy_argv(sys.argv[1:])
    register_zoo()
    from rl_zoo3.enjoy import enjoy

    sys.argv = [sys.argv[0], *argv]
    enjoy()


if __name__ == "__main__":
    main()
