/**
 * YAML as Patroni reads it. Patroni uses PyYAML's safe_load, which is YAML 1.1: `on`/`yes` are
 * booleans, `0750` is octal, `1:30` is base 60. Configs are written against that, so a YAML 1.2
 * reading would change meanings silently (`unix_socket_permissions: 0750` would become 750).
 * Two spots where the `yaml` package's 1.1 schema is wider than PyYAML's are narrowed to PyYAML:
 * single letters y/n stay strings, and an exponent float needs a dot and a signed exponent.
 */
import { parse, type ParseOptions, type DocumentOptions, type ScalarTag, type SchemaOptions, type ToJSOptions } from 'yaml';

type Tags = Exclude<SchemaOptions['customTags'], undefined | null>;
type TagList = Exclude<Tags, (...args: never[]) => unknown>;
type Tag = TagList[number];

/** PyYAML's resolver patterns (yaml/resolver.py) for the tags we narrow. */
const PYYAML_TRUE = /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const PYYAML_FALSE = /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/;
const PYYAML_EXP_FLOAT = /^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*[eE][-+][0-9]+$/;

function isScalarTag(t: Tag): t is ScalarTag {
  return typeof t === 'object' && !('collection' in t && t.collection) && 'test' in t && t.test instanceof RegExp;
}

function narrowToPyYaml(tags: TagList): TagList {
  return tags.map((t): Tag => {
    if (!isScalarTag(t) || !t.test) return t;
    if (t.tag === 'tag:yaml.org,2002:bool') return { ...t, test: t.test.test('yes') ? PYYAML_TRUE : PYYAML_FALSE };
    if (t.tag === 'tag:yaml.org,2002:float' && t.test.source.includes('[eE]')) return { ...t, test: PYYAML_EXP_FLOAT };
    return t;
  });
}

const OPTIONS: ParseOptions & DocumentOptions & SchemaOptions & ToJSOptions = {
  version: '1.1',
  customTags: (tags) => narrowToPyYaml(tags as TagList),
};

/** Parses one YAML document the way PyYAML's safe_load would. Throws the `yaml` package's error. */
export function parseYaml(text: string): unknown {
  return parse(text, OPTIONS);
}
