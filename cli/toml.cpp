/* TOML → jansson, with positions. tomlplusplus is header-only here (the
 * whole parser is compiled into this file, so the fuzzer instruments it
 * too). It is built with exceptions, and every exception stops at this
 * boundary: C callers see -EINVAL and an error entry, never a throw. */
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 1
/* tomlplusplus 3.3.0 checks its parser's invariants with TOML_ASSERT, and
 * under NDEBUG turns them into __builtin_assume: undefined behaviour when
 * they fail. The fuzzer found one that input can break: the table header
 * "[:" reaches parse_key() on a character that starts no key (assertion in
 * parser.inl). So the checks stay on, whatever the build type, and a
 * failed one throws, which the boundary below turns into an error. */
#undef NDEBUG
namespace mt_toml
{
struct internal_error {
};
/* Out of line: in toml++'s few noexcept accessors a failure still ends in
 * std::terminate (as an assert would); in the parser it unwinds. */
[[noreturn]] void assert_failed();
} /* namespace mt_toml */
#define TOML_ASSERT(expr) ((expr) ? static_cast<void>(0) : mt_toml::assert_failed())
/* Same for TOML_UNREACHABLE (__builtin_unreachable), which the fuzzer
 * reached in is_non_ascii_horizontal_whitespace() with "\xce\xbf ?"
 * (U+03BF: the generated table forgets U+00A1-U+0499 and three more
 * ranges, see toml_ascii.h). That function is noexcept, so there the
 * throw still ends in std::terminate: toml_ascii_rewrite() keeps every
 * non-ASCII character from the parser instead. The macro makes the
 * parser's own unreachable paths clean failures. preprocessor.h is
 * #pragma once, so redefining the macro after it sticks. */
#include <toml++/impl/preprocessor.h>
#undef TOML_UNREACHABLE
#define TOML_UNREACHABLE mt_toml::assert_failed()
#include <toml++/toml.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

extern "C" {
#include "cli/config_internal.h"
#include "cli/config_toml.h"
#include "cli/toml_ascii.h"
}

[[noreturn]] void mt_toml::assert_failed()
{
	throw internal_error{};
}

namespace
{

/* toml++ parses the rewritten text; messages name the original column. */
unsigned orig_col(const struct toml_ascii *a, const toml::source_position &p)
{
	return toml_ascii_orig_col(a, p.line, p.column);
}

struct converter {
	struct config_doc *doc;
	struct config_errors *errs;
	const struct toml_ascii *ascii;
	bool failed = false;

	void fail(const toml::source_region &src, const std::string &path, const std::string &msg)
	{
		if (failed)
			return;
		failed = true;
		config_errors_add(errs, path.empty() ? nullptr : path.c_str(), doc->name,
		                  src.begin.line, orig_col(ascii, src.begin), nullptr, "%s",
		                  msg.c_str());
	}

	void loc(const toml::node &n, const std::string &path)
	{
		config_doc_add_loc(doc, path.c_str(), n.source().begin.line,
		                   orig_col(ascii, n.source().begin));
	}

	json_t *convert(const toml::node &n, const std::string &path, size_t depth)
	{
		if (depth > CONFIG_MAX_DEPTH) {
			fail(n.source(), path, "nested too deeply");
			return nullptr;
		}
		if (auto t = n.as_table()) {
			json_t *obj = json_object();
			for (auto &&[k, v] : *t) {
				std::string key(k.str());
				std::string child = path.empty() ? key : path + "." + key;
				/* A key's position is where the key is written. */
				const toml::source_position &at =
				        k.source().begin.line ? k.source().begin : v.source().begin;
				config_doc_add_loc(doc, child.c_str(), at.line,
				                   orig_col(ascii, at));
				json_t *jv = convert(v, child, depth + 1);
				if (!jv) {
					json_decref(obj);
					return nullptr;
				}
				json_object_setn_new(obj, key.data(), key.size(), jv);
			}
			return obj;
		}
		if (auto a = n.as_array()) {
			json_t *arr = json_array();
			size_t i = 0;
			for (auto &&v : *a) {
				std::string child = path + "[" + std::to_string(i++) + "]";
				loc(v, child);
				json_t *jv = convert(v, child, depth + 1);
				if (!jv) {
					json_decref(arr);
					return nullptr;
				}
				json_array_append_new(arr, jv);
			}
			return arr;
		}
		if (auto s = n.as_string())
			return json_stringn(s->get().data(), s->get().size());
		if (auto i = n.as_integer())
			return json_integer(static_cast<json_int_t>(i->get()));
		if (auto f = n.as_floating_point()) {
			double d = f->get();
			if (!std::isfinite(d)) {
				fail(n.source(), path, "inf and nan have no JSON equivalent");
				return nullptr;
			}
			return json_real(d);
		}
		if (auto b = n.as_boolean())
			return json_boolean(b->get());
		/* Dates and times: kept as their TOML text. */
		std::string text;
		if (auto d = n.as_date()) {
			char buf[32];
			std::snprintf(buf, sizeof(buf), "%04u-%02u-%02u", d->get().year,
			              d->get().month, d->get().day);
			text = buf;
		} else if (auto t = n.as_time()) {
			char buf[32];
			std::snprintf(buf, sizeof(buf), "%02u:%02u:%02u", t->get().hour,
			              t->get().minute, t->get().second);
			text = buf;
		} else {
			fail(n.source(), path, "date-times are not supported in a config");
			return nullptr;
		}
		return json_string(text.c_str());
	}
};

bool is_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (static_cast<unsigned char>(s[i]) >= 0x80)
			return false;
	return true;
}

struct ascii_holder {
	struct toml_ascii a = {};
	~ascii_holder() { toml_ascii_free(&a); }
};

} /* namespace */

extern "C" int config_toml_parse(const char *text, size_t len, struct config_doc *doc,
                                 struct config_errors *errs)
{
	ascii_holder h;
	struct toml_ascii_error bad = {};
	converter c{doc, errs, &h.a};

	if (toml_ascii_rewrite(text, len, &h.a, &bad) < 0) {
		config_errors_add(errs, nullptr, doc->name, bad.line, bad.col, nullptr,
		                  "invalid TOML: %s", bad.msg);
		return -EINVAL;
	}
	try {
		/* The invariant that keeps toml++ off its broken table. */
		if (!is_ascii(h.a.text, h.a.len))
			mt_toml::assert_failed();
		toml::table tbl = toml::parse(std::string_view(h.a.text, h.a.len),
		                              std::string_view(doc->name));
		json_t *root = c.convert(tbl, "", 0);
		if (!root)
			return -EINVAL;
		doc->root = root;
		return 0;
	} catch (const toml::parse_error &e) {
		config_errors_add(errs, nullptr, doc->name, e.source().begin.line,
		                  orig_col(&h.a, e.source().begin), nullptr, "invalid TOML: %.*s",
		                  static_cast<int>(e.description().size()), e.description().data());
	} catch (const mt_toml::internal_error &) {
		config_errors_add(errs, nullptr, doc->name, 0, 0, nullptr,
		                  "invalid TOML (rejected by the parser's internal checks)");
	} catch (const std::exception &e) {
		config_errors_add(errs, nullptr, doc->name, 0, 0, nullptr, "cannot read TOML: %s",
		                  e.what());
	} catch (...) {
		config_errors_add(errs, nullptr, doc->name, 0, 0, nullptr, "cannot read TOML");
	}
	return -EINVAL;
}
