"""``python -m boom``: the same command line as ``boom``."""
from boom.cli import main

if __name__ == "__main__":
    main(prog_name="boom")
