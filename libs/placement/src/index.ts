import { X } from '@tw/block-format';
export const Y = X + 1;
