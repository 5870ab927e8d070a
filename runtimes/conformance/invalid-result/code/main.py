def handler(event, context):
    return {"not json": object()}
