def handler(event, context):
    print("to stdout")
    import sys
    print("to stderr", file=sys.stderr)
    return {"event": event, "name": context.function_name, "version": context.function_version,
            "memory": int(context.memory_limit_in_mb), "left": context.get_remaining_time_in_millis() > 0}
