exports.handler = async (event) => [event.n, process.env.GREETING, process.env.IGNIS_FUNCTION_NAME];
