def handler(event, context):
    print("x" * 100)
    return "y" * event["size"]
