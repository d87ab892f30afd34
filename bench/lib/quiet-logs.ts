// Imported first by the bench entry points: the handlers' Powertools logger reads LOG_LEVEL when it is
// created, and INFO lines from thousands of requests would bury the figures. Errors still show.
process.env.LOG_LEVEL ??= 'WARN';
