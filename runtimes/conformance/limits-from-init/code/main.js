exports.handler = async (event) => { console.log('x'.repeat(100)); return 'y'.repeat(event.size); };
