"""The console log of every run: Dagster's colored console logger, plus the one DEBUG event a
person must see: a step waiting for a slot of a pool (the warehouse, the registry) that another
run holds. Without it a waiting `make run` prints nothing and looks hung."""

import logging

import dagster as dg

POOL_WAIT = "blocked by limit for pool"


class ShowPoolWaits(logging.Filter):
    """Passes records at ``level`` and above, and pool waits at INFO, saying what they mean."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO and POOL_WAIT in record.getMessage():
            record.msg = f"{record.getMessage()}: waiting for the run that holds it to release it"
            record.args = ()
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return record.levelno >= self.level


@dg.logger(
    config_schema=dg.colored_console_logger.config_schema,
    description="Dagster's colored console logger; steps waiting for a pool slot at INFO.",
)
def console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = dg.colored_console_logger.logger_fn(init_context)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    for handler in logger.handlers:
        handler.setLevel(logging.DEBUG)
        handler.addFilter(ShowPoolWaits(level))
    return logger
