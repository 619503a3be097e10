"""Detection: what one list URL of an unknown API looks like, for `interlink init --from`.

`detect(url, credentials)` makes a few requests and decides where the records are, how the
list is paged (verified by reading page 2), the primary key and a change-time field the API
may filter on, each with its evidence and a confidence; `detection_yaml` writes the result
as a commented `interlink.yaml`.
"""

from ._credentials import Credentials, Secrets
from ._detect import connection_name, detect, resource_name
from ._model import Confidence, Detection, DetectionError, Finding
from ._yaml import detection_yaml

__all__ = [
    "Confidence",
    "Credentials",
    "Detection",
    "DetectionError",
    "Finding",
    "Secrets",
    "connection_name",
    "detect",
    "detection_yaml",
    "resource_name",
]
