# Validates a CycloneDX JSON SBOM against its schema with the CycloneDX project's own
# library (cyclonedx-python-lib, installed by .ci/setup). Usage: validate_cdx.py FILE
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
data = open(sys.argv[1]).read()
import json
version = json.loads(data).get("specVersion", "1.3")
schema = {"1.3": SchemaVersion.V1_3, "1.4": SchemaVersion.V1_4, "1.5": SchemaVersion.V1_5, "1.6": SchemaVersion.V1_6}[version]
error = JsonStrictValidator(schema).validate_str(data)
if error:
    print(f"invalid CycloneDX {version}: {error}")
    sys.exit(1)
print(f"valid CycloneDX {version}")
