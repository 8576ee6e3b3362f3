# akpkg's PEP 517 hook runner: runs one hook of a build backend in a fresh interpreter.
#
# Usage: python -s -P hook_runner.py HOOK CONTROL_DIR
# CONTROL_DIR/input.json: {"backend": "module:object", "backend_path": [...],
#                          "config_settings": {...}, "directory": "..."}
# CONTROL_DIR/output.json: {"return": value} | {"unsupported": true}
#                          | {"error": "kind", "message": "...", "traceback": "..."}
# The current directory is the source tree. Everything the backend prints goes to the log.
import importlib
import json
import os
import sys
import traceback


def write(control, result):
    with open(os.path.join(control, "output.json"), "w", encoding="utf-8") as file:
        json.dump(result, file)


def load_backend(spec, backend_path):
    # PEP 517: backend-path entries "MUST be inserted at the start of sys.path" and the
    # backend must then be loaded from one of them.
    paths = [os.path.abspath(entry) for entry in backend_path]
    sys.path[:0] = paths
    module_name, _, object_path = spec.partition(":")
    module = importlib.import_module(module_name)
    if paths:
        location = os.path.abspath(getattr(module, "__file__", "") or "")
        if not any(os.path.commonpath([location, path]) == path for path in paths):
            raise ImportError(
                f"{spec} was loaded from {location}, not from the backend-path {backend_path}"
            )
    backend = module
    for name in filter(None, object_path.split(".")):
        backend = getattr(backend, name)
    return backend


def main():
    hook, control = sys.argv[1], sys.argv[2]
    with open(os.path.join(control, "input.json"), encoding="utf-8") as file:
        request = json.load(file)
    try:
        backend = load_backend(request["backend"], request.get("backend_path") or [])
    except Exception as error:
        write(control, {"error": "backend-unavailable", "message": f"{type(error).__name__}: {error}",
                        "traceback": traceback.format_exc()})
        return
    function = getattr(backend, hook, None)
    config = request.get("config_settings") or None
    if function is None:
        # PEP 517: the get_requires hooks are optional and default to [].
        if hook.startswith("get_requires_for_"):
            write(control, {"return": []})
        else:
            write(control, {"unsupported": True})
        return
    try:
        if hook.startswith("get_requires_for_"):
            value = list(function(config))
        else:
            value = function(request["directory"], config)
    except Exception as error:
        write(control, {"error": "hook-failed", "message": f"{type(error).__name__}: {error}",
                        "traceback": traceback.format_exc()})
        return
    write(control, {"return": value})


main()
