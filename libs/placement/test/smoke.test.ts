import { expect, test } from 'vitest';
import { Y } from '../src/index.js';
test('smoke', () => { expect(Y).toBe(2); });
