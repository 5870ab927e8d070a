exports.handler = async (event) => { throw new TypeError('boom ' + event.why); };
