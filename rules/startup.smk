import os
import sys
from pathlib import Path

# The workflow's own package (src/poolup) is importable here and in every job,
# wherever the checkout sits and whether or not it was pip-installed: used as a
# Snakemake module, a workflow runs from another directory with only Snakemake
# and the libraries installed.
WORKFLOW_SRC = Path(str(workflow.current_basedir.get_path_or_uri(secret_free=True))).parent / "src"


def copy_package_from_source(basedir):
    """Copy src/poolup out of a git-hosted workflow source (github(...), gitfile(...)) into .snakemake/.

    Such a source has no folder on disk; Snakemake's source cache reads its files.
    The package's __init__.py lists the modules (MODULES). Each file is written
    only when its content differs, under a temporary name then renamed: cluster
    jobs parse the workflow too, while other jobs import the package.
    """
    import ast
    import hashlib

    package = basedir.join("../src/poolup")
    with workflow.sourcecache.open(package.join("__init__.py")) as handle:
        init = handle.read()
    names = next(
        ast.literal_eval(node.value)
        for node in ast.parse(init).body
        if isinstance(node, ast.Assign) and any(getattr(target, "id", "") == "MODULES" for target in node.targets)
    )
    uri = str(package.get_path_or_uri(secret_free=True))
    root = Path(".snakemake", "poolup-src", hashlib.sha256(uri.encode()).hexdigest()[:16])
    (root / "poolup").mkdir(parents=True, exist_ok=True)
    for name in names:
        with workflow.sourcecache.open(package.join(f"{name}.py")) as handle:
            text = handle.read()
        target = root / "poolup" / f"{name}.py"
        if not target.is_file() or target.read_text() != text:
            temporary = target.with_name(f".{name}.{os.getpid()}.tmp")
            temporary.write_text(text)
            os.replace(temporary, target)
    return root.resolve()


if not WORKFLOW_SRC.is_dir():
    WORKFLOW_SRC = copy_package_from_source(workflow.current_basedir)
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
