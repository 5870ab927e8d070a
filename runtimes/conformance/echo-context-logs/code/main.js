exports.handler = async (event, context) => {
  console.log('to stdout');
  console.error('to stderr');
  return { event, name: context.functionName, version: context.functionVersion,
    memory: Number(context.memoryLimitInMB), left: context.getRemainingTimeInMillis() > 0 };
};
