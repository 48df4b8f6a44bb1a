"""``python -m ekya``: run one deployment cell (see conf/config.yaml)."""

from ekya.app import main

if __name__ == "__main__":
    main()
