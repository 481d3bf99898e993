"""``python -m basketry``: the ``basketry`` command. Also the file ``spark-submit`` runs
``basketry`` from (it takes a ``.py`` path, not a console script): see docs/operations.md,
"Mining on Spark"."""

from basketry.cli.app import main

if __name__ == "__main__":
    main()
