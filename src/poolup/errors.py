"""The one exception type that the command line and the workflow turn into a one-line message."""


class PoolupError(Exception):
    """A problem with the user's input or configuration.

    The message names the file or key at fault and what to do about it; it is
    printed as one line, without a traceback.
    """


# The logger whose lines a workflow job also prints on the terminal, beside its log file
# (poolup.scripting.logged_job): a training job's progress, seed by seed.
CONSOLE_LOGGER = "poolup.console"
