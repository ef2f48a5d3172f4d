"""``python -m mtgym``: print the versions of the packages a result depends on (paste them into a bug report)."""

from mtgym.versions import format_versions

if __name__ == "__main__":
    print(format_versions())
