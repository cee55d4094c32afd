import { defineErrors } from '@tw/errors';

export const configErrors = defineErrors('@tw/config', {
  TW_CONFIG_UNREADABLE: { description: 'The config file cannot be read or is not valid JSON; the details name the file and the position.' },
  TW_CONFIG_INVALID: { description: 'A config field has a wrong type or value, or is unknown; the message names every bad field and what it must be.' },
  TW_CLI_USAGE: { description: 'A command line is malformed (unknown flag, missing value); the message says what was expected. Run the binary with --help.' },
});
