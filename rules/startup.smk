import os
import sys
from pathlib import Path

# The workflow's own package (src/poolup) is importable here and in every job,
# wherever the checkout sits and whether or not it was pip-installed: used as a
# Snakemake module, a workflow runs from another directory with only Snakemake
# installed. (A module loaded from a remote URL needs `pip install` instead.)
WORKFLOW_SRC = Path(str(workflow.current_basedir.get_path_or_uri(secret_free=True))).parent / "src"
if WORKFLOW_SRC.is_dir():
    sys.path.insert(0, str(WORKFLOW_SRC))
    # Set, not required from the user, so not an `envvars:` entry; jobs inherit it.
    os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, (str(WORKFLOW_SRC), os.environ.get("PYTHONPATH")))))

from poolup.config import check_config_files
from poolup.errors import PoolupError

# Snakemake reads config.yaml at the Snakefile's `configfile:` and stops, without
# naming the file, on one it cannot read (empty, a list, tab-indented, a Python
# tag): check it first, for one line naming the file, the line and the fix.
# (Files given with --configfile are read by Snakemake before the workflow starts.)
if not workflow.modifier.skip_configfile:
    try:
        check_config_files(["config.yaml"])
    except PoolupError as error:
        sys.stderr.write(f"poolup: config error: {error}\n")
        sys.exit(1)
