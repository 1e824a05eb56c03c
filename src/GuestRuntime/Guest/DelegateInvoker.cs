using System.Buffers;
using System.Reflection;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Guest;

/// <summary>
/// Runs a delegate the host sent. The method is named by a 64-bit key; the first time a sandbox sees a
/// key the host adds the descriptor (assembly, type, metadata token, module version id), the method is
/// resolved and a <see cref="MethodRunner"/> cached; later calls skip straight to it. The target (a
/// lambda's closure) is deserialized field by field.
/// Request: <c>[InvokeDelegate, key, [assembly, type, token, moduleVersionId] | nil, target | nil]</c>.
/// </summary>
internal static class DelegateInvoker
{
    private static readonly Dictionary<ulong, MethodRunner> s_runners = new();

    // The runner of the last call: a sandbox (a grain's, say) mostly runs one lambda again and again, and this check
    // costs the interpreter a fraction of the dictionary lookup. Runners are never replaced, so it cannot go stale.
    private static ulong s_lastKey;
    private static MethodRunner? s_lastRunner;

    /// <summary>
    /// Handles one request; <paramref name="body"/> is what follows the kind. The key, a nil descriptor and a target whose
    /// captured values are all primitives are read straight from the bytes (the interpreter pays dearly for a reader); a
    /// reader is built only for a descriptor or for other captured values. Malformed bytes get a BadRequest reply.
    /// </summary>
    public static void Invoke(ReadOnlyMemory<byte> body, ArrayBufferWriter<byte> output)
    {
        var bytes = body.Span;
        var at = 0;
        switch (PrimitiveValueReader.ReadUnsigned(bytes, ref at, out var key))
        {
            case SpanRead.Truncated:
                Replies.WriteBadRequest(output, "The invocation request was truncated before the end of its method key.");
                return;
            case SpanRead.OtherType:
                Replies.WriteBadRequest(output, $"The invocation request's method key is not an unsigned integer (MessagePack code 0x{bytes[at]:X2}).");
                return;
        }
        if (at >= bytes.Length)
        {
            Replies.WriteBadRequest(output, "The invocation request was truncated after its method key.");
            return;
        }
        var runner = key == s_lastKey ? s_lastRunner : null;
        if (runner is null && !s_runners.TryGetValue(key, out runner))
        {
            if (bytes[at] == MessagePackCode.Nil)
            {
                Replies.WriteBadRequest(output, $"The sandbox does not know method key {key:X16} and no descriptor came with it.");
                return;
            }
            var reader = new MessagePackReader(body[at..]);
            runner = Resolve(ref reader, output);
            if (runner is null)
            {
                return;
            }
            s_runners[key] = runner;
            at += (int)reader.Consumed;
        }
        else if (bytes[at] == MessagePackCode.Nil)
        {
            at++;
        }
        else
        {
            // A descriptor the sandbox does not need (the caller could not know it had the method already).
            var reader = new MessagePackReader(body[at..]);
            if (!TrySkip(ref reader, output))
            {
                return;
            }
            at += (int)reader.Consumed;
        }

        (s_lastKey, s_lastRunner) = (key, runner);
        object? target = null;
        if (runner.NeedsTarget)
        {
            if (at >= bytes.Length || bytes[at] == MessagePackCode.Nil)
            {
                Replies.WriteBadRequest(output, $"The delegate's target of type '{runner.DeclaringType.FullName}' was missing.");
                return;
            }
            var plan = runner.TargetReader ??= ClosureSerializer.ReaderFor(runner.DeclaringType);
            if (plan.TryReadFlat(bytes[at..], out var flat))
            {
                target = flat; // captured values that are all primitives (or none), read straight from the bytes
            }
            else
            {
                var reader = new MessagePackReader(body[at..]);
                try
                {
                    target = ClosureSerializer.Deserialize(ref reader, plan);
                }
                catch (Exception e) when (MalformedMessagePack.IsOnlyTheSerializers(e))
                {
                    // The serializer's complaints about the bytes; what the user's code threw while a value was built
                    // (a constructor, a setter) goes on to the dispatcher, which reports it as a guest exception.
                    Replies.WriteBadRequest(output, MalformedMessagePack.Chain(e).Any(c => c is EndOfStreamException)
                        ? $"The invocation request was truncated inside the target of type '{runner.DeclaringType.FullName}'."
                        : $"The target of type '{runner.DeclaringType.FullName}' in the invocation request is malformed: {string.Join(" ", MalformedMessagePack.Chain(e).Select(c => c.Message).Distinct())}");
                    return;
                }
            }
        }

        try
        {
            runner.Run(target, output);
        }
        catch (Exception e)
        {
            output.ResetWrittenCount();
            Replies.WriteException(output, e);
        }
    }

    private static bool TrySkip(ref MessagePackReader reader, ArrayBufferWriter<byte> output)
    {
        try
        {
            reader.Skip();
            return true;
        }
        catch (EndOfStreamException)
        {
            Replies.WriteBadRequest(output, "The invocation request was truncated inside its method descriptor.");
            return false;
        }
        catch (Exception e) when (MalformedMessagePack.Is(e))
        {
            Replies.WriteBadRequest(output, $"The invocation request's method descriptor was malformed: {e.Message}");
            return false;
        }
    }

    private static MethodRunner? Resolve(ref MessagePackReader reader, ArrayBufferWriter<byte> output)
    {
        MethodDescriptor? descriptor;
        try
        {
            descriptor = MethodDescriptor.Read(ref reader);
        }
        catch (Exception e) when (MalformedMessagePack.Is(e))
        {
            descriptor = null;
        }
        if (descriptor is null)
        {
            Replies.WriteBadRequest(output, "The method descriptor was malformed.");
            return null;
        }
        var runner = TryResolve(descriptor, out var problem);
        if (runner is null)
        {
            if (problem is FileNotFoundException)
            {
                Replies.WriteException(output, problem);
            }
            else
            {
                Replies.WriteBadRequest(output, problem!.Message);
            }
        }
        return runner;
    }

    /// <summary>
    /// Prepares the method a descriptor names without running it: resolves it and caches its runner
    /// under <paramref name="key"/>, as a first call would. Used to warm a template sandbox.
    /// </summary>
    /// <returns>The runner, or null (with the reason in <paramref name="problem"/>).</returns>
    internal static MethodRunner? Prepare(ulong key, MethodDescriptor descriptor, out Exception? problem)
    {
        if (s_runners.TryGetValue(key, out var known))
        {
            problem = null;
            return known;
        }
        var runner = TryResolve(descriptor, out problem);
        if (runner is not null)
        {
            s_runners[key] = runner;
        }
        return runner;
    }

    /// <summary>
    /// Finds the parameterless method a descriptor names and builds its runner. A missing assembly is a
    /// <see cref="FileNotFoundException"/> naming it; any other mismatch an <see cref="InvalidOperationException"/>.
    /// </summary>
    private static MethodRunner? TryResolve(MethodDescriptor descriptor, out Exception? problem)
    {
        try
        {
            return TryResolveNames(descriptor, out problem);
        }
        catch (Exception e) when (e is ArgumentException or TypeLoadException or FileLoadException or BadImageFormatException)
        {
            // Names that cannot be names (an empty assembly name), a type the assembly does not have: the caller's mistake.
            problem = new InvalidOperationException(
                $"The method descriptor ({descriptor.AssemblyName}, {descriptor.TypeName}, token 0x{descriptor.MetadataToken:X8}) names nothing the sandbox can resolve: {e.Message}");
            return null;
        }
    }

    private static MethodRunner? TryResolveNames(MethodDescriptor descriptor, out Exception? problem)
    {
        problem = null;
        var (assemblyName, typeName, token, moduleVersionId) = (descriptor.AssemblyName, descriptor.TypeName, descriptor.MetadataToken, descriptor.ModuleVersionId);
        Assembly assembly;
        try
        {
            // Loading the assembly first makes a missing assembly a FileNotFoundException that names it.
            assembly = Assembly.Load(new AssemblyName(assemblyName));
        }
        catch (FileNotFoundException)
        {
            problem = new FileNotFoundException(
                $"Could not load assembly '{assemblyName}' in the sandbox: no assembly loader of the host provides it " +
                "(see IsolatedRuntimeHost.WithBinDirectoryAssemblyLoader and WithAssemblyLoader).", assemblyName);
            return null;
        }
        var type = assembly.GetType(typeName, throwOnError: true)!;
        if (type.Module.ModuleVersionId.ToString() != moduleVersionId)
        {
            problem = new InvalidOperationException(
                $"The sandbox has a different build of assembly '{type.Assembly.FullName}' than the host (module version {type.Module.ModuleVersionId}, host {moduleVersionId}). " +
                "Methods of the .NET libraries themselves cannot be sent (the sandbox runs its own build of them): wrap the call in a lambda.");
            return null;
        }
        // ResolveMethod finds the method by its token directly instead of materializing every method of the type.
        var method = ResolveMethod(type, token);
        if (method is null || method.GetParameters().Length != 0)
        {
            problem = new InvalidOperationException($"Method token 0x{token:X8} does not name a parameterless method of type '{type.FullName}'.");
            return null;
        }
        return MethodRunner.Create(method);
    }

    private static MethodInfo? ResolveMethod(Type type, int token)
    {
        if (type.IsGenericType)
        {
            // A token resolves to the open generic definition's method: find the constructed type's own.
            const BindingFlags All = BindingFlags.DeclaredOnly | BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
            return type.GetMethods(All).FirstOrDefault(m => m.MetadataToken == token);
        }
        try
        {
            return type.Module.ResolveMethod(token) is MethodInfo method && method.DeclaringType == type ? method : null;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}
