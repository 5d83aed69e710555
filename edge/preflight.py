"""``fer-edge check-config``'s checks beyond the config file itself: what ``run`` would refuse later.

load_config already checks every key, range, cross-field rule, TLS file and topic. This adds
what needs more than the file: the source spec parses (without opening anything or importing
OpenCV), the model loads and meets the input contract (this loads LiteRT: the only heavy
import), and the password file can be read. Problems are returned the way load_config reports
its own, so check-config exits 78 for any of them; warnings do not fail the check.
"""

from __future__ import annotations

from .config import Config
from .errors import ConfigError, ModelError, SourceError
from .mqtt.checks import password_file_warning
from .mqtt.identity import shared_identity_warning
from .secrets import read_password
from .source_spec import parse_spec


def source_spec_problem(spec: str) -> str | None:
    """Why ``open_source`` would refuse ``spec`` (None if it would build a source from it)."""
    try:
        parse_spec(spec)
    except SourceError as exc:
        return str(exc)
    return None


def preflight(config: Config, *, check_model: bool = True) -> list[str]:
    """Warnings for ``config``; ConfigError listing every problem ``run`` would stop on."""
    problems, warnings = [], []
    if problem := source_spec_problem(config.source.spec):
        problems.append(f"source.spec: {problem}")
    if check_model:
        from .classifier import TFLiteExpressionClassifier  # numpy and LiteRT: only this check needs them

        model = config.model
        try:
            TFLiteExpressionClassifier(model.path or None, model.labels or None, threads=model.threads)
        except ModelError as exc:
            problems.append(f"model.path: {exc}")
    if (password_file := config.mqtt_password_file()) is not None:
        try:
            read_password(password_file)
        except ConfigError as exc:
            problems += exc.problems
        if warning := password_file_warning(password_file):
            warnings.append(warning)
    if warning := shared_identity_warning(config.mqtt.device_id, config.device_id):
        warnings.append(warning)
    if config.http.enabled:
        try:
            config.http.check_listen()
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return warnings
