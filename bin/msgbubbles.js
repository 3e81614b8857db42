#!/usr/bin/env node
// The operator entry point (`npx msgbubbles …`). `npm install` compiles src/ to dist/ (the
// `prepare` script), so the CLI and the server run as plain JavaScript, without a loader.
import { main } from "../dist/cli/main.js";

process.exitCode = await main(process.argv);
