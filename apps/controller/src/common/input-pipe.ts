import {
  BadRequestException,
  NotFoundException,
  ValidationPipe,
  type ArgumentMetadata,
} from '@nestjs/common';
import { flattenValidationErrors, InvalidInput, type FieldError } from './errors.js';
import { isStorableText, MAX_DEPTH, scanInput } from './text.js';

/** The one message for a body that is JSON but not an object (`[]`, `null`, `"x"`, `1`). */
export const NOT_AN_OBJECT = 'the body must be a JSON object';

/**
 * The one pipe every parameter of every route goes through (installed globally in app.ts):
 * the class-validator rules of the DTOs, and before them the rules no DTO can say.
 *
 * - A path parameter holding text PostgreSQL cannot store (a NUL, an unpaired surrogate)
 *   names nothing: 404, as for any name that does not exist.
 * - A body that is not a JSON object is one 400 saying so (not one error per field).
 * - A body or query nested deeper than `MAX_DEPTH` is one 400 naming where, before
 *   class-transformer recurses into it.
 * - Every string value or key of a body or query that PostgreSQL cannot store, and every
 *   prototype key (`__proto__`, `constructor`), is a 400 naming its field, together with
 *   the DTO's own errors for the other fields: each field gets one message.
 *
 * So no request text reaches a query that PostgreSQL would refuse (a 500).
 */
export class ApiValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      exceptionFactory: (errors) => new InvalidInput(flattenValidationErrors(errors)),
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'param') {
      if (typeof value === 'string' && !isStorableText(value)) {
        throw new NotFoundException(
          `${JSON.stringify(value)} names nothing: ids are UUIDs and names 1-63 characters of a-z, 0-9 and "-"`,
        );
      }
      return super.transform(value, metadata);
    }
    if (metadata.type !== 'body' && metadata.type !== 'query') {
      return super.transform(value, metadata);
    }
    if (
      metadata.type === 'body' &&
      value !== undefined &&
      (value === null || typeof value !== 'object' || Array.isArray(value)) &&
      this.toValidate(metadata)
    ) {
      throw new BadRequestException(NOT_AN_OBJECT);
    }
    const scan = scanInput(value, metadata.data ?? '');
    if (scan.tooDeep !== undefined) {
      throw InvalidInput.field(
        scan.tooDeep,
        `${scan.tooDeep} nests arrays and objects more than ${MAX_DEPTH} levels deep`,
      );
    }
    let out: unknown;
    try {
      out = await super.transform(value, metadata);
    } catch (e) {
      if (scan.problems.length > 0 && e instanceof InvalidInput) {
        throw new InvalidInput(merge(scan.problems, detailsOf(e)));
      }
      throw e;
    }
    if (scan.problems.length > 0) throw new InvalidInput(scan.problems);
    return out;
  }
}

function detailsOf(e: InvalidInput): FieldError[] {
  const r = e.getResponse() as { details?: FieldError[] };
  return r.details ?? [];
}

/**
 * The text problems, and the validators' errors for every other field: a field holding a
 * NUL also fails its pattern, but one message (the text one) says what is wrong.
 */
function merge(text: FieldError[], validation: FieldError[]): FieldError[] {
  const covered = (field: string) =>
    text.some(
      (t) =>
        field === t.field ||
        field.startsWith(`${t.field}.`) ||
        field.startsWith(`${t.field}[`) ||
        t.field.startsWith(`${field}.`) ||
        t.field.startsWith(`${field}[`),
    );
  return [...validation.filter((v) => !covered(v.field)), ...text];
}
