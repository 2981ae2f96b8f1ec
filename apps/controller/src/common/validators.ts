import { type ValidationArguments, ValidationOptions, registerDecorator } from 'class-validator';
import {
  isCanonicalCidr,
  isIpv4,
  isReserved,
  normalizeMac,
  parseCidr,
  isUnicastMac,
} from '../../../../libs/model/src/index.js';
import { isUuid } from './lookup.js';

/** Names of hosts, networks, instances and routers: DNS-label-like, 1–63 characters. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const NAME_MESSAGE =
  '$property must be 1-63 characters of a-z, 0-9 and "-", starting with a letter or digit';

function rule(name: string, test: (v: unknown) => boolean, message: string) {
  return (options?: ValidationOptions): PropertyDecorator =>
    (object, propertyName) =>
      registerDecorator({
        name,
        target: object.constructor,
        propertyName: String(propertyName),
        options: { message, ...options },
        validator: { validate: test },
      });
}

const UUID_MESSAGE =
  '$property must not have the form of a UUID: ids are UUIDs, and a UUID in a path or reference always means an id';

/** What is wrong with a name, or undefined when it is one (one message, the most telling). */
function nameProblem(v: unknown): string | undefined {
  if (typeof v !== 'string') return '$property must be a string';
  // A name never has the form of an id: a path segment or reference that parses as a UUID
  // is always looked up as an id (`findByIdOrName`), so such a name could never be named.
  if (isUuid(v)) return UUID_MESSAGE;
  if (!NAME_PATTERN.test(v)) return NAME_MESSAGE;
  return undefined;
}

/**
 * The name of a host, network, instance or router: DNS-label-like (`NAME_PATTERN`) and
 * not of the form of a UUID, so that ids and names can never be confused. One rule, so a
 * bad name gets one message: not a string, of the form of a UUID, or not DNS-label-like.
 */
export const IsObjectName =
  (options?: ValidationOptions): PropertyDecorator =>
  (object, propertyName) =>
    registerDecorator({
      name: 'isObjectName',
      target: object.constructor,
      propertyName: String(propertyName),
      options: {
        message: (a: ValidationArguments) =>
          (nameProblem(a.value) ?? NAME_MESSAGE).replace('$property', a.property),
        ...options,
      },
      validator: { validate: (v: unknown) => nameProblem(v) === undefined },
    });

/**
 * An integer from `min` to `max`, with one message saying both (rather than one message
 * per failed rule: "must be an integer", "must not be less than", ...).
 */
export const IsIntIn = (min: number, max: number, options?: ValidationOptions) =>
  rule(
    'isIntIn',
    (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max,
    `$property must be an integer from ${min} to ${max}`,
  )(options);

/** For the OpenAPI description of a name property. */
export const NAME_DESCRIPTION =
  '1-63 characters of a-z, 0-9 and "-", starting with a letter or digit; not of the form of a UUID (ids are UUIDs)';

export const IsIpv4Address = rule(
  'isIpv4Address',
  (v) => typeof v === 'string' && isIpv4(v),
  '$property must be an IPv4 address (a.b.c.d)',
);

export const IsUnicastIpv4 = rule(
  'isUnicastIpv4',
  (v) => typeof v === 'string' && isIpv4(v) && !isReserved(parseCidr(`${v}/32`)!),
  '$property must be a unicast IPv4 address outside 0/8, 127/8, 169.254/16, 224/4 and 240/4',
);

export const IsIpv4Cidr = rule(
  'isIpv4Cidr',
  (v) => typeof v === 'string' && isCanonicalCidr(v) && !isReserved(parseCidr(v)!),
  '$property must be an IPv4 CIDR with no host bits set (e.g. 10.0.0.0/24), outside reserved ranges',
);

export const IsUnicastMac = rule(
  'isUnicastMac',
  (v) => typeof v === 'string' && normalizeMac(v) !== null && isUnicastMac(normalizeMac(v)!),
  '$property must be a unicast MAC address (aa:bb:cc:dd:ee:ff, least significant bit of the first octet clear)',
);

// ---- labels ---------------------------------------------------------------------------
// One rule for the labels of hosts and instances, Kubernetes' (k8s.io/apimachinery
// validation: IsQualifiedName for keys, IsValidLabelValue for values), at most 64 labels.

/** A label name, and a non-empty value: 1-63 characters, alphanumeric at both ends. */
export const LABEL_NAME_PATTERN = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** A label value: empty, or a label name. */
export const LABEL_VALUE_PATTERN = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
/** A key prefix: a DNS-1123 subdomain (dot-separated DNS labels, at most 253 characters). */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const MAX_LABELS = 64;

export const LABEL_RULE =
  'keys are an optional DNS subdomain prefix (lower case, at most 253 characters) and "/", ' +
  'then a name of 1-63 characters of letters, digits, "-", "_" and ".", starting and ending ' +
  'with a letter or digit; values are empty or such a name; at most 64 labels';

/** What is wrong with a label key, or undefined when it is one. */
export function labelKeyProblem(k: string): string | undefined {
  const slash = k.indexOf('/');
  const prefix = slash < 0 ? null : k.slice(0, slash);
  const name = slash < 0 ? k : k.slice(slash + 1);
  if (prefix !== null && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)))
    return `the prefix of label key "${k}" must be a DNS subdomain of at most 253 characters (lower case letters, digits, "-", "."-separated)`;
  if (!LABEL_NAME_PATTERN.test(name))
    return `the name of label key "${k}" must be 1-63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit`;
  return undefined;
}

/** What is wrong with labels as a whole, or undefined when they are valid. */
export function labelsProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return '$property must be an object mapping label keys to string values';
  const entries = Object.entries(v);
  if (entries.length > MAX_LABELS) return `$property must hold at most ${MAX_LABELS} labels`;
  for (const [k, val] of entries) {
    const bad = labelKeyProblem(k);
    if (bad) return `$property: ${bad}`;
    if (typeof val !== 'string') return `$property: the value of label "${k}" must be a string`;
    if (!LABEL_VALUE_PATTERN.test(val))
      return `$property: the value of label "${k}" must be empty or 1-63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit`;
  }
  return undefined;
}

/**
 * Labels of hosts and instances (Kubernetes' rule, `LABEL_RULE`); the message names the
 * first offending key or value.
 */
export const IsLabels =
  (options?: ValidationOptions): PropertyDecorator =>
  (object, propertyName) =>
    registerDecorator({
      name: 'isLabels',
      target: object.constructor,
      propertyName: String(propertyName),
      options: {
        message: (a: ValidationArguments) =>
          (labelsProblem(a.value) ?? LABEL_RULE).replace('$property', a.property),
        ...options,
      },
      validator: { validate: (v: unknown) => labelsProblem(v) === undefined },
    });

/** What is wrong with an equality selector `key=value`, or undefined when it is one. */
export function labelSelectorProblem(v: unknown): string | undefined {
  if (typeof v !== 'string') return '$property must be a string';
  const eq = v.indexOf('=');
  if (eq < 0) return '$property must be an equality selector key=value (e.g. app=web)';
  const bad = labelKeyProblem(v.slice(0, eq));
  if (bad) return `$property: ${bad}`;
  if (!LABEL_VALUE_PATTERN.test(v.slice(eq + 1)))
    return '$property: the value must be empty or 1-63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit';
  return undefined;
}

/** `key=value`: one equality selector on labels (`labelSelectorProblem`). */
export const IsLabelSelector =
  (options?: ValidationOptions): PropertyDecorator =>
  (object, propertyName) =>
    registerDecorator({
      name: 'isLabelSelector',
      target: object.constructor,
      propertyName: String(propertyName),
      options: {
        message: (a: ValidationArguments) =>
          (labelSelectorProblem(a.value) ?? '$property must be key=value').replace(
            '$property',
            a.property,
          ),
        ...options,
      },
      validator: { validate: (v: unknown) => labelSelectorProblem(v) === undefined },
    });
