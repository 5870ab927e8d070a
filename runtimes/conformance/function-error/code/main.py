def handler(event, context):
    raise TypeError("boom " + event["why"])
