"""Every JSON answer the integration tests get, checked against its JSON
Schema in docs/schemas/ (issue 25): the harness's Daemon.request calls
check() on each response, so every test validates for free.  A test that
provokes a deliberately broken answer passes validate=False to request()
(or sets d.validate = False); TALLYD_SCHEMAS=0 turns it off for a run.

Which schema: by method, path and status (errors: error.json whatever the
route).  A JSON answer of a path no schema knows (a route added without
one) is not checked here; test_reference.py checks that the index names a
schema for every JSON route."""
import gzip
import json
import os
import re
import sys

try:
    import jsonschema
except ImportError:
    # Debian's python3-jsonschema (scripts/setup) for another python3,
    # as test_page.py finds Debian's selenium.
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import jsonschema
    except ImportError:
        raise SystemExit("tests/integration/schemas.py: no jsonschema module "
                         "(run scripts/setup: python3-jsonschema)")

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_DIR = os.path.join(HERE, "..", "..", "docs", "schemas")
ENABLED = os.environ.get("TALLYD_SCHEMAS", "1") != "0"

_validators = {}

# (method, path pattern, schema) for 2xx answers; the first match wins.
ROUTES = [
    ("GET", r"/healthz", "health"),
    ("GET", r"/v1/contests", "contests"),
    ("GET", r"/v1/?", "index"),
    ("GET", r"/v1/election", "election"),
    ("GET", r"/v1/leaderboard", "leaderboard"),
    ("GET", r"/v1/versions/[^/]+/leaderboard", "leaderboard"),
    ("GET", r"/v1/provinces", "provinces"),
    ("GET", r"/v1/versions/[^/]+/provinces", "provinces"),
    ("GET", r"/v1/provinces/[^/]+", "province"),
    ("GET", r"/v1/provinces/[^/]+/history", "history"),
    ("GET", r"/v1/coalitions/[^/]+", "coalition"),
    ("GET", r"/v1/changes", "changes"),
    ("POST", r"/v1/provinces/[^/]+/(results|lot)", "post"),
    ("POST", r"/v1/results", "post"),
]


def validator(name):
    v = _validators.get(name)
    if v is None:
        with open(os.path.join(SCHEMA_DIR, name + ".json")) as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        v = _validators[name] = cls(schema)
    return v


def schema_for(method, path, status):
    """The schema's name for an answer, or None."""
    path = path.split("?", 1)[0]
    # /v1/contests/{id}/... mirrors every route, if the daemon has them.
    path = re.sub(r"^/v1/contests/[^/]+(/|$)", r"/v1\1", path)
    if status >= 400:
        return "error"
    if status == 302 and path.startswith("/v1/versions/"):
        return "redirect"
    if status not in (200, 201):
        return None
    for m, pattern, name in ROUTES:
        if m == ("GET" if method in ("GET", "HEAD") else method) and \
                re.fullmatch(pattern, path):
            return name
    return None


def check(method, path, status, headers, body):
    """Raise AssertionError when a JSON answer does not follow its schema."""
    if not ENABLED or method == "HEAD" or not body:
        return
    ctype = enc = ""
    for k, v in headers:
        if k.lower() == "content-type":
            ctype = v
        elif k.lower() == "content-encoding":
            enc = v
    if not ctype.startswith("application/json"):
        return
    name = schema_for(method, path, status)
    if name is None:
        return
    if enc == "gzip":
        body = gzip.decompress(body)
    doc = json.loads(body.decode("utf-8"))
    errors = sorted(validator(name).iter_errors(doc), key=lambda e: e.path)
    if errors:
        raise AssertionError("%s %s -> %d does not follow docs/schemas/%s."
                             "json: %s" % (method, path, status, name, "; ".join(
                                 "%s at /%s" % (e.message[:300], "/".join(
                                     str(p) for p in e.absolute_path))
                                 for e in errors[:5])))
