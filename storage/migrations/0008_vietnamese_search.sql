-- Vietnamese full-text search, with and without diacritics.
--
-- vn_unaccent folds diacritics (unaccent, then lower case) at indexing and at query time, so "quyen su
-- dung dat" finds "quyền sử dụng đất". Dossier vectors also keep the words as written (weight A, the
-- 'simple' configuration: lower case, diacritics kept), so an exact match can rank above a folded one.
-- Files are indexed folded only (their text can be long). pg_trgm (migration 0001) serves fuzzy names.

CREATE EXTENSION IF NOT EXISTS unaccent;

CREATE TEXT SEARCH CONFIGURATION vn_unaccent (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION vn_unaccent
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple;

ALTER TABLE dossiers ADD COLUMN search_vector tsvector;
ALTER TABLE files ADD COLUMN text_vector tsvector;

CREATE FUNCTION dossiers_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    words text := concat_ws(' ', NEW.code, NEW.procedure_code, NEW.title, NEW.subject_name, NEW.subject_id_number,
                            NEW.result_number, NEW.result_issuer);
BEGIN
    NEW.search_vector := setweight(to_tsvector('simple', words), 'A')
                         || setweight(to_tsvector('vn_unaccent', words), 'B');
    RETURN NEW;
END;
$$;

CREATE TRIGGER dossiers_search_vector BEFORE INSERT OR UPDATE OF code, procedure_code, title, subject_name,
    subject_id_number, result_number, result_issuer ON dossiers
    FOR EACH ROW EXECUTE FUNCTION dossiers_search_vector();

CREATE FUNCTION files_text_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.text_vector := to_tsvector('vn_unaccent', concat_ws(' ', NEW.name, NEW.text_content));
    RETURN NEW;
END;
$$;

CREATE TRIGGER files_text_vector BEFORE INSERT OR UPDATE OF name, text_content ON files
    FOR EACH ROW EXECUTE FUNCTION files_text_vector();

UPDATE dossiers SET code = code;
UPDATE files SET name = name;

CREATE INDEX dossiers_search_vector_idx ON dossiers USING gin (search_vector);
CREATE INDEX files_text_vector_idx ON files USING gin (text_vector);
