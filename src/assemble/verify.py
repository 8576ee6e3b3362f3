# akpkg verify: load the Django settings (if any), then import the top-level modules of every
# installed distribution, in this one interpreter. Usage: python verify.py REQUEST.json OUT.json
import importlib
import json
import os
import sys
import traceback

with open(sys.argv[1], encoding="utf-8") as file:
    request = json.load(file)
failures = []
apps = None
settings = request.get("settings")
if settings:
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    try:
        import django

        django.setup()
        from django.apps import apps as registry

        apps = len(registry.get_app_configs())
    except BaseException as error:  # noqa: BLE001 - every failure is reported, not raised
        failures.append({
            "distribution": "django.setup()",
            "module": settings,
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(),
        })
imported = 0
for distribution, modules in sorted(request["modules"].items()):
    for module in modules:
        try:
            importlib.import_module(module)
            imported += 1
        except BaseException as error:  # noqa: BLE001
            failures.append({
                "distribution": distribution,
                "module": module,
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(),
            })
with open(sys.argv[2], "w", encoding="utf-8") as file:
    json.dump({"failures": failures, "apps": apps, "imported": imported, "prefix": sys.prefix}, file)
