'use strict';
// `node --test runtimes/node/` only picks up files named like *.test.js;
// the tests live in test_bootstrap.js.
require('./test_bootstrap.js');
