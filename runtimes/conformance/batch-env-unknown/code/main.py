import os
def handler(event, context):
    return [event["n"], os.environ.get("GREETING"), os.environ.get("IGNIS_FUNCTION_NAME")]
