export declare const BUNDLE_BANNER: string;
