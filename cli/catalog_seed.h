/* `cadenzactl catalog seed`: a synthetic catalogue into the tracks table. */
#ifndef CZ_CLI_CATALOG_SEED_H
#define CZ_CLI_CATALOG_SEED_H

/**
 * @brief Runs `catalog seed --tracks N [--seed S]` with the arguments after
 * "seed". @returns the exit status (0, 1 failed, 2 usage).
 */
int cz_cli_catalog_seed(int argc, char **argv);

#endif
