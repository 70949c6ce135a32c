//! Procedural macros for pulse. Use them through the `pulse` crate:
//! `#[derive(pulse::Operation)]` and `#[pulse::profile_fn]`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{parse_macro_input, Data, DeriveInput, Expr, Fields, ItemFn, Lit, LitStr, Meta, Token};

/// Derives `pulse::Operation` for an enum: each variant is a named
/// operation (unit, tuple and struct variants alike; the fields are the
/// caller's and do not change the operation).
///
/// ```ignore
/// #[derive(pulse::Operation)]
/// enum Op {
///     #[category(name = "Parsing", description = "Reading the feed")]
///     Parse,
///     #[category(name = "Parsing")] // the description is reused
///     Validate(u32),
///     #[category(name = "Orders", description = "Order handling")]
///     #[priority(10)]
///     Submit { venue: String },
///     Idle, // no category
/// }
/// ```
#[proc_macro_derive(Operation, attributes(category, priority))]
pub fn derive_operation(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match operation(input) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

struct Category {
    name: String,
    description: Option<String>,
}

fn operation(input: DeriveInput) -> syn::Result<Tokens> {
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(&input.ident, "#[derive(Operation)] works on enums"));
    };
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    // A description given once is reused by later variants of the category.
    let mut descriptions: Vec<(String, String)> = Vec::new();
    let mut sites = Vec::new();
    let mut arms = Vec::new();
    for (i, v) in data.variants.iter().enumerate() {
        let mut category: Option<Category> = None;
        let mut priority: i64 = 0;
        for attr in &v.attrs {
            if attr.path().is_ident("category") {
                category = Some(parse_category(attr)?);
            } else if attr.path().is_ident("priority") {
                let lit: syn::LitInt = attr.parse_args()?;
                priority = lit.base10_parse()?;
            }
        }
        let (cat, desc) = match category {
            Some(c) => {
                let desc = match c.description {
                    Some(d) => {
                        descriptions.retain(|(n, _)| *n != c.name);
                        descriptions.push((c.name.clone(), d.clone()));
                        d
                    }
                    None => descriptions
                        .iter()
                        .find(|(n, _)| *n == c.name)
                        .map(|(_, d)| d.clone())
                        .unwrap_or_default(),
                };
                (c.name, desc)
            }
            None => (String::new(), String::new()),
        };
        let name = v.ident.to_string();
        sites.push(quote! {
            ::pulse::ScopeSite::operation(#name, #cat, #desc, #priority)
        });
        let vi = &v.ident;
        let pat = match &v.fields {
            Fields::Unit => quote! { #ident::#vi },
            Fields::Unnamed(_) => quote! { #ident::#vi(..) },
            Fields::Named(_) => quote! { #ident::#vi { .. } },
        };
        arms.push(quote! { #pat => &SITES[#i] });
    }
    let n = sites.len();
    let body = if n == 0 {
        quote! { match *self {} }
    } else {
        quote! {
            static SITES: [::pulse::ScopeSite; #n] = [#(#sites),*];
            match self { #(#arms,)* }
        }
    };
    Ok(quote! {
        impl #impl_generics ::pulse::Operation for #ident #ty_generics #where_clause {
            fn site(&self) -> &'static ::pulse::ScopeSite {
                #body
            }
        }
    })
}

fn parse_category(attr: &syn::Attribute) -> syn::Result<Category> {
    let metas = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
    let mut name = None;
    let mut description = None;
    for m in metas {
        let Meta::NameValue(nv) = &m else {
            return Err(syn::Error::new_spanned(
                m,
                "expected `name = \"…\"` or `description = \"…\"`",
            ));
        };
        let value = match &nv.value {
            Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => s.value(),
            other => return Err(syn::Error::new_spanned(other, "expected a string literal")),
        };
        if nv.path.is_ident("name") {
            name = Some(value);
        } else if nv.path.is_ident("description") {
            description = Some(value);
        } else {
            return Err(syn::Error::new_spanned(
                &nv.path,
                "unknown key: use `name` or `description`",
            ));
        }
    }
    let name =
        name.ok_or_else(|| syn::Error::new_spanned(attr, "#[category] needs `name = \"…\"`"))?;
    Ok(Category { name, description })
}

/// Times a function as a scope named after it (`module::function`). On an `async fn`, the scope is entered
/// on every poll of its future, so only the time spent running counts and
/// allocations follow the task from thread to thread.
///
/// `#[pulse::profile_fn(name = "custom")]` names the scope explicitly.
#[proc_macro_attribute]
pub fn profile_fn(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(attr as ProfileArgs);
    let mut f = parse_macro_input!(item as ItemFn);
    let fn_name = f.sig.ident.to_string();
    let name = args.name.map(|n| n.value());
    let name_expr = match name {
        Some(n) => quote! { #n },
        None => quote! { ::core::concat!(::core::module_path!(), "::", #fn_name) },
    };
    let block = &f.block;
    let site = format_ident!("__PULSE_SITE", span = Span::call_site());
    let new_block: syn::Block = if f.sig.asyncness.is_some() {
        syn::parse_quote! {{
            static #site: ::pulse::ScopeSite = ::pulse::ScopeSite::new(#name_expr);
            ::pulse::Instrumented::new(&#site, async move #block).await
        }}
    } else {
        syn::parse_quote! {{
            static #site: ::pulse::ScopeSite = ::pulse::ScopeSite::new(#name_expr);
            let __pulse_guard = ::pulse::ScopeGuard::enter(&#site);
            #block
        }}
    };
    *f.block = new_block;
    quote!(#f).into()
}

/// `#[pulse::profile_fn]` with the `enabled` feature off: the function is left
/// exactly as written.
#[proc_macro_attribute]
pub fn profile_fn_disabled(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}

struct ProfileArgs {
    name: Option<LitStr>,
}

impl Parse for ProfileArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Ok(ProfileArgs { name: None });
        }
        let key: syn::Ident = input.parse()?;
        if key != "name" {
            return Err(syn::Error::new(key.span(), "expected `name = \"…\"`"));
        }
        input.parse::<Token![=]>()?;
        Ok(ProfileArgs { name: Some(input.parse()?) })
    }
}
