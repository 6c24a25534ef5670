"""Encodes rows of raw feature values with a fitted adatt schema, written from docs/datasets.md.

An independent reading of the encoding contract (vocabulary ids, feature hashing, missing markers,
multi-valued bags, dense normalisation), so that a Python service fed the same schema JSON builds
the same model input as adatt's Predictor and as training did.

    python3 encode_rows.py case.json   # {"schema": <fitted schema>, "rows": [{column: value}, ...]}

Prints {"dense": [...], "categorical": [...], "multiValued": [{"indices": [...], "offsets": [...]}]},
flat and row-major like adatt's EncodedData.
"""
import json
import math
import sys

import xxhash

MISSING_ID = 0
OUT_OF_VOCABULARY_ID = 1
FIRST_VALUE_ID = 2
FIRST_HASHED_ID = 1


def text_of(value):
    """A categorical cell as text: numbers as JavaScript's String() writes them (integers without '.0')."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def id_of(feature):
    buckets = feature.get("hashBuckets")
    if buckets is not None:
        return lambda text: FIRST_HASHED_ID + xxhash.xxh64_intdigest(text.encode("utf-8")) % buckets
    ids = {value: k + FIRST_VALUE_ID for k, value in enumerate(feature["vocabulary"])}
    return lambda text: ids.get(text, OUT_OF_VOCABULARY_ID)


def encode_dense(feature, value):
    if value is None:
        return feature["fill"]
    x = math.log1p(value) if feature["normalize"] == "log1p" else value
    return (x - feature["center"]) / feature["scale"]


def encode_rows(schema, rows):
    missing = set(schema["missingValues"])

    def is_missing(value):
        return value is None or (isinstance(value, str) and value in missing)

    dense = [encode_dense(feature, row[feature["column"]]) for row in rows for feature in schema["dense"]]
    categorical_ids = [id_of(feature) for feature in schema["categorical"]]
    categorical = [
        MISSING_ID if is_missing(row[feature["column"]]) else ids(text_of(row[feature["column"]]))
        for row in rows
        for feature, ids in zip(schema["categorical"], categorical_ids)
    ]
    multi_valued = []
    for feature in schema["multiValued"]:
        ids = id_of(feature)
        indices, offsets = [], []
        for row in rows:
            offsets.append(len(indices))
            value = row[feature["column"]]
            if isinstance(value, list):
                value = feature["separator"].join(text_of(token) for token in value)
            if is_missing(value):
                indices.append(MISSING_ID)
                continue
            tokens = [token.strip() for token in text_of(value).split(feature["separator"])]
            indices.extend(ids(token) for token in tokens if token)
        multi_valued.append({"indices": indices, "offsets": offsets})
    return {"dense": dense, "categorical": categorical, "multiValued": multi_valued}


def main():
    with open(sys.argv[1], encoding="utf-8") as file:
        case = json.load(file)
    print(json.dumps(encode_rows(case["schema"], case["rows"])))


if __name__ == "__main__":
    main()
