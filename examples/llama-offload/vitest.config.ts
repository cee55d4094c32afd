import { defineProject } from 'vitest/config';
import { twVitest } from '../../vitest.shared.js';

export default defineProject(twVitest(import.meta.dirname));
