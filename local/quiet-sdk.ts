// The SDK warns on every start that releases after January 2027 need Node 22; Node 20 is this project's
// documented runtime until then, so the warning is noise in a terminal.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
