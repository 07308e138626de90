"""``python -m iterit.cli``: the same as the ``iterit`` command."""

from iterit.cli import main

if __name__ == "__main__":
    main()
