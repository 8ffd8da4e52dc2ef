"""herald_redact(doc, pattern, names): a JSON document with every match of `pattern` (a
regular expression, case-insensitive) in its keys and string values replaced by "[erased]",
and numbers that match it turned into that string. With `names`, an object in an array (a
record: one contact of an import request) that matches `pattern` is the person's record and
loses the matches of `names` too; other records keep theirs.

A privacy erasure (config.core.privacy) redacts a person's address inside JSON columns (raw
orders, webhook headers, import rows, audit changes) with one UPDATE per table; a JSON walk
in SQL keeps that set-based where text replacement would break the syntax (an id stored as
a number) or miss an escaped value.
"""

from django.db import migrations

CREATE = r"""
CREATE FUNCTION herald_redact(doc jsonb, pattern text, names text DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    CASE jsonb_typeof(doc)
    WHEN 'object' THEN
        RETURN (SELECT coalesce(jsonb_object_agg(regexp_replace(k, pattern, '[erased]', 'gi'),
                                                 herald_redact(v, pattern, names)), '{}'::jsonb)
                  FROM jsonb_each(doc) AS e(k, v));
    WHEN 'array' THEN
        RETURN (SELECT coalesce(jsonb_agg(
                    CASE WHEN names IS NOT NULL AND jsonb_typeof(v) = 'object'
                              AND v::text ~* pattern
                         THEN herald_redact(v, pattern || '|' || names)
                         ELSE herald_redact(v, pattern, names) END ORDER BY i), '[]'::jsonb)
                  FROM jsonb_array_elements(doc) WITH ORDINALITY AS a(v, i));
    WHEN 'string' THEN
        RETURN to_jsonb(regexp_replace(doc #>> '{}', pattern, '[erased]', 'gi'));
    WHEN 'number' THEN
        IF doc::text ~* pattern THEN
            RETURN to_jsonb(regexp_replace(doc::text, pattern, '[erased]', 'gi'));
        END IF;
        RETURN doc;
    ELSE
        RETURN doc;
    END CASE;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0005_stored_files"),
    ]

    operations = [
        migrations.RunSQL(CREATE, "DROP FUNCTION herald_redact(jsonb, text, text);"),
    ]
