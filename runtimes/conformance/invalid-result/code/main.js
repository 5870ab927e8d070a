exports.handler = async () => ({ notJson: 10n });
