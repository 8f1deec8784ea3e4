/** @module cli/help-defaults — defaults the command-line help shows, apart so `berth --help` loads no command's code. */

/** Where `berth warm` finds berth unless told. */
export const DEFAULT_SERVER = 'http://127.0.0.1:5000';

/** The longest validity every client accepts (Apple platforms cap server certificates at 825 days). */
export const SERVER_DAYS = 825;
