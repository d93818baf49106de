"""Write scikit-learn's OpenML cache for a small image data set, so that
``fetch_openml`` reads it with no network: the same files (JSON API answers and
the ARFF file, gzipped, under ``<data_home>/openml/openml.org/``) that a real
first download leaves behind, in the layout of OpenML's image sets (784 numeric
``pixel1..pixel784`` features and a nominal ``class`` target).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np


def _write(root: Path, api_path: str, payload: bytes) -> None:
    path = root / (api_path + ".gz")
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(payload)


def _json(value: dict) -> bytes:
    return json.dumps(value).encode()


def write_openml_cache(data_home: Path, name: str, data_id: int, images: np.ndarray, labels: np.ndarray) -> None:
    """Cache ``images`` (N x H x W uint8) and ``labels`` as OpenML data set ``name``, version 1."""
    root = Path(data_home) / "openml" / "openml.org"
    pixels = images.reshape(len(images), -1)
    classes = [str(value) for value in sorted(set(labels.tolist()))]
    header = [f"@RELATION {name}", ""]
    header += [f"@ATTRIBUTE pixel{i + 1} NUMERIC" for i in range(pixels.shape[1])]
    header += ["@ATTRIBUTE class {" + ",".join(classes) + "}", "", "@DATA"]
    rows = [",".join(map(str, row)) + f",{label}" for row, label in zip(pixels.tolist(), labels.tolist())]
    arff = ("\n".join(header + rows) + "\n").encode()
    file_id = 10_000 + data_id
    arff_path = f"data/v1/download/{file_id}/{name}.arff"
    _write(root, arff_path, arff)
    _write(
        root,
        f"api/v1/json/data/list/data_name/{name.lower()}/limit/2/data_version/1",
        _json(
            {"data": {"dataset": [{"did": data_id, "name": name, "version": 1, "status": "active", "format": "ARFF"}]}}
        ),
    )
    _write(
        root,
        f"api/v1/json/data/{data_id}",
        _json(
            {
                "data_set_description": {
                    "id": str(data_id),
                    "name": name,
                    "version": "1",
                    "description": f"{name} (generated for tests)",
                    "format": "ARFF",
                    "file_id": str(file_id),
                    "url": f"https://api.openml.org/{arff_path}",
                    "default_target_attribute": "class",
                    "status": "active",
                    "md5_checksum": hashlib.md5(arff).hexdigest(),
                }
            }
        ),
    )
    feature = {
        "data_type": "numeric",
        "is_target": "false",
        "is_ignore": "false",
        "is_row_identifier": "false",
        "number_of_missing_values": "0",
    }
    features = [{**feature, "index": str(i), "name": f"pixel{i + 1}"} for i in range(pixels.shape[1])]
    features.append(
        {
            **feature,
            "index": str(pixels.shape[1]),
            "name": "class",
            "data_type": "nominal",
            "nominal_value": classes,
            "is_target": "true",
        }
    )
    _write(root, f"api/v1/json/data/features/{data_id}", _json({"data_features": {"feature": features}}))
    _write(
        root,
        f"api/v1/json/data/qualities/{data_id}",
        _json({"data_qualities": {"quality": [{"name": "NumberOfInstances", "value": f"{len(images)}.0"}]}}),
    )
